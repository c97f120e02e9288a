<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Processing deadlines and ages at the reference date. -->
  <xsl:param name="frist" select="'P14D'"/>
  <xsl:template match="/antraege">
    <xsl:variable name="stichtag" select="xs:date(@stichtag)"/>
    <fristen>
      <xsl:for-each select="antrag">
        <xsl:variable name="eingang" select="xs:date(@eingang)"/>
        <xsl:variable name="geburt" select="xs:date(geburt)"/>
        <xsl:variable name="alter" select="year-from-date($stichtag) - year-from-date($geburt) - (if (format-date($stichtag, '[M01][D01]') lt format-date($geburt, '[M01][D01]')) then 1 else 0)"/>
        <a id="{@id}" frist="{$eingang + xs:dayTimeDuration($frist)}"
           tage-offen="{days-from-duration($stichtag - $eingang)}"
           ueberfaellig="{$eingang + xs:dayTimeDuration($frist) lt $stichtag}"
           alter="{$alter}" volljaehrig="{$alter ge 18}"
           quartal="{(month-from-date($eingang) - 1) idiv 3 + 1}"
           monatsende="{$eingang + xs:yearMonthDuration('P1M') - xs:dayTimeDuration('P' || day-from-date($eingang) || 'D')}"/>
      </xsl:for-each>
    </fristen>
  </xsl:template>
</xsl:stylesheet>
