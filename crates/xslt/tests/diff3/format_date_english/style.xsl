<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- English date formats: ordinals, names, abbreviations, ISO day and week numbers. -->
  <xsl:template match="/antraege">
    <dates>
      <xsl:for-each select="antrag">
        <d id="{@id}"
           us="{format-date(xs:date(@eingang), '[M]/[D]/[Y]')}"
           long="{format-date(xs:date(@eingang), '[FNn], [MNn] [D1o], [Y]', 'en', (), ())}"
           short="{format-date(xs:date(@eingang), '[D01]-[MN,*-3]-[Y]', 'en', (), ())}"
           iso="{format-date(xs:date(@eingang), '[Y0001]-W[W01]-[F1]')}"
           doy="{format-date(xs:date(@eingang), '[d]')}"/>
      </xsl:for-each>
    </dates>
  </xsl:template>
</xsl:stylesheet>
