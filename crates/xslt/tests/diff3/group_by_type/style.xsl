<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Statistics per kind of application: group-by with sums and counts. -->
  <xsl:template match="/antraege">
    <statistik>
      <xsl:for-each-group select="antrag" group-by="@art">
        <art name="{current-grouping-key()}" anzahl="{count(current-group())}"
             summe="{sum(current-group()/xs:decimal(@betrag))}"
             ids="{string-join(current-group()/@id, ',')}"
             erster="{current-group()[1]/name}" pos="{position()}" last="{last()}"/>
      </xsl:for-each-group>
    </statistik>
  </xsl:template>
</xsl:stylesheet>
