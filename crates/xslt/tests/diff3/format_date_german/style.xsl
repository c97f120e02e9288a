<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- German date formats in notices (Bescheide). Month and day names come from
       the stylesheet: SaxonC-HE has no German localisation of [MNn]/[FNn]. -->
  <xsl:variable name="monate" select="('Januar', 'Februar', 'März', 'April', 'Mai', 'Juni', 'Juli', 'August', 'September', 'Oktober', 'November', 'Dezember')"/>
  <xsl:variable name="tage" select="('Montag', 'Dienstag', 'Mittwoch', 'Donnerstag', 'Freitag', 'Samstag', 'Sonntag')"/>
  <xsl:template match="/antraege">
    <daten>
      <xsl:for-each select="antrag">
        <xsl:variable name="d" select="xs:date(@eingang)"/>
        <d id="{@id}"
           kurz="{format-date($d, '[D01].[M01].[Y0001]')}"
           knapp="{format-date($d, '[D1].[M1].[Y01]')}"
           lang="{format-date($d, '[D]. ') || $monate[month-from-date($d)] || format-date($d, ' [Y]')}"
           tag="{$tage[xs:integer(format-date($d, '[F1]'))] || ', ' || format-date($d, '[D]. ') || substring($monate[month-from-date($d)], 1, 3) || '.'}"
           woche="{format-date($d, 'KW [W01]/[Y0001]')}"
           geburt="{format-date(xs:date(geburt), '[D01].[M01].[Y0001]')}"/>
      </xsl:for-each>
    </daten>
  </xsl:template>
</xsl:stylesheet>
